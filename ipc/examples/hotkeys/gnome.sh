#!/bin/sh
# Bind Super+M to `glosms compose` (the quick-send popup) in GNOME. Run once.
set -eu
base=org.gnome.settings-daemon.plugins.media-keys
path=/org/gnome/settings-daemon/plugins/media-keys/custom-keybindings/glosms-compose/
existing=$(gsettings get $base custom-keybindings)
case "$existing" in
  *glosms-compose*) ;;
  "@as []") gsettings set $base custom-keybindings "['$path']" ;;
  *) gsettings set $base custom-keybindings "${existing%]}, '$path']" ;;
esac
gsettings set $base.custom-keybinding:$path name 'glosms quick send'
gsettings set $base.custom-keybinding:$path command 'glosms compose'
gsettings set $base.custom-keybinding:$path binding '<Super>m'
echo "Super+M now opens the glosms quick-send popup."
