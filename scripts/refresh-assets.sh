#!/usr/bin/env bash
# Refreshes the web console's vendored browser libraries (gateway/console/vendor/)
# from the npm registry: for each pinned package, `npm pack` fetches its tarball, the
# tarball is checked against the registry's integrity hash (sha512), and the files the
# console loads are copied with the package's licence into vendor/<package>/. Then
# vendor/vendor.json (read by gateway/tests/console.rs, which checks every file's
# sha256) and vendor/VENDOR.md are written anew.
#
# Only this script needs npm (and the node it runs on); building and running the
# gateway never do: the files are committed and embedded in the binary.
#
#   scripts/refresh-assets.sh          # fetch the pinned versions again
#
# To move to a new version, change its line below, run the script, look at the
# console (scripts/screenshots.sh, cargo test -p gateway --test console) and commit.
set -euo pipefail
cd "$(dirname "$0")/.."

# name, version, then the package files to vendor (relative to the package root).
PACKAGES=(
  "lightweight-charts 5.2.1 dist/lightweight-charts.standalone.production.mjs"
  "qrcode-generator 2.0.4 dist/qrcode.mjs"
)

VENDOR=gateway/console/vendor

fail() { echo "refresh-assets.sh: $*" >&2; exit 1; }
command -v npm >/dev/null || fail "npm is needed to fetch the packages (Debian: apt-get install npm)"
command -v node >/dev/null || fail "node is needed (it comes with npm)"
command -v sha256sum >/dev/null || fail "sha256sum is needed (coreutils)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# sha512 of a file as npm writes integrity hashes: `sha512-<base64>`.
sri_sha512() {
  node -e 'const c = require("crypto"), f = require("fs");
    process.stdout.write("sha512-" + c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}

mit_licence() { # name version copyright-line
  cat <<TEXT
$1 $2 declares the MIT licence (its package.json) and ships no licence file; this
is the MIT licence with the copyright line of its source header.

MIT License

$3

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
TEXT
}

# One line per vendored file: name, version, licence, integrity, path, sha256.
listing="$work/listing.tsv"
: >"$listing"

for entry in "${PACKAGES[@]}"; do
  read -r name version files <<<"$entry"
  echo "refresh-assets.sh: $name@$version"
  integrity=$(npm view "$name@$version" dist.integrity)
  license=$(npm view "$name@$version" license)
  [ -n "$integrity" ] || fail "$name@$version: the registry gave no integrity hash"
  tarball=$(cd "$work" && npm pack --silent "$name@$version" | tail -n 1)
  actual=$(sri_sha512 "$work/$tarball")
  [ "$actual" = "$integrity" ] || fail "$name@$version: the tarball's hash $actual is not the registry's $integrity"
  mkdir -p "$work/$name"
  tar -xzf "$work/$tarball" -C "$work/$name"
  package="$work/$name/package"

  target="$VENDOR/$name"
  rm -rf "$target"
  mkdir -p "$target"
  for file in $files; do
    [ -f "$package/$file" ] || fail "$name@$version has no $file"
    cp "$package/$file" "$target/"
  done
  licence_file=$(find "$package" -maxdepth 1 -type f \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' \) | head -n 1)
  if [ -n "$licence_file" ]; then
    cp "$licence_file" "$target/LICENSE"
  elif [ "$license" = "MIT" ]; then
    first=${files%% *}
    holder=$(grep -m 1 -o 'Copyright (c) .*' "$package/$first" || true)
    [ -n "$holder" ] || fail "$name@$version ships no licence file and its source names no copyright holder"
    mit_licence "$name" "$version" "$holder" >"$target/LICENSE"
  else
    fail "$name@$version ($license) ships no licence file"
  fi

  for path in "$target"/*; do
    sha=$(sha256sum "$path" | cut -d ' ' -f 1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$version" "$license" "$integrity" \
      "${path#"$VENDOR/"}" "$sha" >>"$listing"
  done
done

node - "$listing" "$VENDOR" <<'SCRIPT'
const fs = require("fs");
const [listing, vendor] = process.argv.slice(2);
const packages = [];
for (const line of fs.readFileSync(listing, "utf8").split("\n").filter(Boolean)) {
  const [name, version, license, integrity, path, sha256] = line.split("\t");
  let p = packages.find((p) => p.name === name);
  if (!p) packages.push((p = { name, version, license, integrity, files: [] }));
  p.files.push({ path, sha256 });
}
fs.writeFileSync(`${vendor}/vendor.json`, JSON.stringify({ packages }, null, 2) + "\n");
const md = [
  "# Vendored browser libraries",
  "",
  "Written by `scripts/refresh-assets.sh` (do not edit by hand): the npm packages the",
  "console loads, pinned, each tarball checked against the registry's integrity hash",
  "before its files were copied. `gateway/tests/console.rs` checks every file against",
  "the sha256 in `vendor.json`.",
  "",
  "| package | version | licence | npm integrity |",
  "|---|---|---|---|",
  ...packages.map((p) => `| \`${p.name}\` | ${p.version} | ${p.license} | \`${p.integrity}\` |`),
  "",
  "| file | sha256 |",
  "|---|---|",
  ...packages.flatMap((p) => p.files.map((f) => `| \`${f.path}\` | \`${f.sha256}\` |`)),
  "",
  "Lightweight Charts™ by TradingView (https://www.tradingview.com/): the console's",
  "charts (`js/charts.js`) turn the library's attribution logo off (it injects an inline",
  "`<style>` the Content-Security-Policy refuses) and link to https://www.tradingview.com/",
  "under each chart instead, as the library's licence notice asks.",
  "",
];
fs.writeFileSync(`${vendor}/VENDOR.md`, md.join("\n"));
SCRIPT
echo "refresh-assets.sh: wrote $VENDOR/vendor.json and $VENDOR/VENDOR.md"
