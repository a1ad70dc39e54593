# glosmsd: start the glosmsd daemon when you log in to Windows.
#
#   powershell -ExecutionPolicy Bypass -File glosmsd-startup.ps1          # add it
#   powershell -ExecutionPolicy Bypass -File glosmsd-startup.ps1 -Remove  # take it away
#
# It puts a shortcut to glosmsd (the one on PATH, e.g. from pipx) in your Startup folder.
# Generated from glosmsd/cli/autostart.py: edit that, then run
#   python -m glosmsd.cli.autostart --write packaging/
[CmdletBinding()]
param([switch]$Remove)

$ErrorActionPreference = 'Stop'
$startup = [Environment]::GetFolderPath('Startup')
$shortcut = Join-Path $startup 'glosmsd.lnk'

if ($Remove) {
    if (Test-Path -LiteralPath $shortcut) {
        Remove-Item -LiteralPath $shortcut
        Write-Output "Removed ${shortcut}; glosmsd no longer starts when you log in."
    } else {
        Write-Output "Nothing to remove (no ${shortcut})."
    }
    exit 0
}

$command = Get-Command -Name 'glosmsd' -CommandType Application -ErrorAction SilentlyContinue |
    Select-Object -First 1
if (-not $command) {
    [Console]::Error.WriteLine('glosmsd is not on PATH: install it first, then run this again.')
    exit 1
}
$shell = New-Object -ComObject WScript.Shell
$link = $shell.CreateShortcut($shortcut)
$link.TargetPath = $command.Source
$link.WorkingDirectory = $env:USERPROFILE
$link.WindowStyle = 7  # minimized: glosmsd is a console program
$link.Description = 'glosmsd: SMS and MMS from your phone extension on the desktop'
$link.Save()
Write-Output "glosmsd will start when you log in (${shortcut} starts $($command.Source))."
