"""`glosms completion`: the tab-completion scripts for bash, zsh and fish (made by shtab
from the whole parser), and `--list`, the conversations and numbers the scripts ask the
running daemon for while completing.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from glosmsd.cli.glosms.codes import EXIT_OK, CliError
from glosmsd.cli.glosms.commands import connect
from glosmsd.cli.glosms.output import emit, one_line
from glosmsd.core.errors import GlosmsdError

SHELLS: Final = ("bash", "zsh", "fish")


COMPLETION_EPILOG: Final = """\
install it once (make the folder first); new shells pick it up:
  bash: glosms completion bash > ~/.local/share/bash-completion/completions/glosms
        (read by the bash-completion package; without it, source the file in ~/.bashrc)
  zsh:  glosms completion zsh > ~/.zfunc/_glosms
        (and in ~/.zshrc, before compinit: fpath+=(~/.zfunc))
  fish: glosms completion fish > ~/.config/fish/completions/glosms.fish
Conversation ids and numbers are asked of the running daemon when completed."""


#: Conversation ids (described by name in zsh and fish) and the numbers one can send to,
#: asked of the daemon only when that argument is being completed.
LISTED: Final = {
    "conversations": ("_glosms_conversations", "conversation"),
    "numbers": ("_glosms_numbers", "number"),
}


#: Shell functions that offer what `glosms completion --list WHAT` prints (value TAB
#: description per line); zsh shows the descriptions, bash only the values.
_BASH_LISTER: Final = r"""@FN@() {
  compgen -W "$(glosms completion --list @WHAT@ 2>/dev/null | cut -f1)" -- "$1"
}"""


_ZSH_LISTER: Final = r"""@FN@() {
  local -a items
  local line
  for line in ${(f)"$(glosms completion --list @WHAT@ 2>/dev/null)"}; do
    items+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
  done
  _describe -t @WHAT@ @NOUN@ items
}"""


def _dynamic(what: str) -> dict[str, Any]:
    fn, noun = LISTED[what]

    def fill(template: str) -> str:
        return template.replace("@FN@", fn).replace("@WHAT@", what).replace("@NOUN@", noun)

    return {
        "bash": fn,
        "zsh": fn,
        "fish": f"(glosms completion --list {what} 2>/dev/null)",
        "preamble": {"bash": fill(_BASH_LISTER), "zsh": fill(_ZSH_LISTER)},
    }


def run_completion(args: argparse.Namespace) -> int:
    if args.list:
        return _list_for_completion(args)
    if args.shell is None:
        raise CliError("name a shell: glosms completion bash|zsh|fish")
    import shtab  # only here: no other command pays for it

    from glosmsd.cli.glosms.parser import build_parser  # it holds this module's run

    parser = build_parser()
    file, folder = shtab.FILE, shtab.DIRECTORY
    special = {
        ("send", "files"): file,
        ("send", "to"): _dynamic("numbers"),
        ("export", "dir"): folder,
        ("read", "conversation"): _dynamic("conversations"),
        ("mark-read", "conversation"): _dynamic("conversations"),
        ("delete", "conversation"): _dynamic("conversations"),
        ("compose", "to"): _dynamic("numbers"),
        ("open", "conversation"): _dynamic("conversations"),
    }
    for action in parser._actions:
        if action.dest == "socket":
            action.complete = file  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                for arg in child._actions:
                    if (name, arg.dest) in special:
                        arg.complete = special[name, arg.dest]
    emit(shtab.complete(parser, shell=args.shell).rstrip("\n"))
    return EXIT_OK


def _list_for_completion(args: argparse.Namespace) -> int:
    """Candidates for the shell, one per line (`value<TAB>description`); quiet on failure."""
    try:
        with connect(args, timeout=2.0) as client:
            convs = client.call("conversations", {"limit": 200})
    except GlosmsdError:
        return EXIT_OK  # no daemon: nothing to offer, and no noise in the middle of a line
    for c in convs:
        title = one_line(str(c.get("name") or c.get("remote") or ""), 40)
        if args.list == "conversations":
            emit(f"{c.get('id')}\t{title}")
        elif c.get("remote"):
            emit(f"{c.get('remote')}\t{title}")
    return EXIT_OK
