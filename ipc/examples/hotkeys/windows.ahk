; AutoHotkey v2: Win+M opens the glosms quick-send popup.
; glosmsd's socket is not available on Windows yet (see ipc/SPEC.md): this binding is
; ready for when it is, or for glosms installed in WSL (second line).
#m::Run "glosms compose", , "Hide"
; #m::Run "wsl.exe glosms compose", , "Hide"
