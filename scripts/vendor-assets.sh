#!/usr/bin/env bash
# Re-vendor the released front-end assets from the npm registry into admin_ui/static/vendor/.
# Needs npm only when run; the built files are committed, so installs and tests never need npm.
# GOV.UK Frontend's stylesheet asks for fonts and images under /assets/; we rewrite that one
# prefix to where the files are served from, and record it in admin_ui/static/VENDORED.md.
set -euo pipefail
GOVUK_VERSION="${GOVUK_VERSION:-5.14.0}"
MOJ_VERSION="${MOJ_VERSION:-8.0.1}"   # the last MOJ Frontend line whose peer is govuk-frontend 5
HTMX_VERSION="${HTMX_VERSION:-2.0.11}"

root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/admin_ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "govuk-frontend@$GOVUK_VERSION" "@ministryofjustice/frontend@$MOJ_VERSION" "htmx.org@$HTMX_VERSION" >/dev/null
for tgz in *.tgz; do
  mkdir -p "${tgz%.tgz}"
  tar xzf "$tgz" -C "${tgz%.tgz}"
done

rm -rf "$vendor"
mkdir -p "$vendor/govuk-frontend" "$vendor/moj-frontend" "$vendor/htmx"

gov="$work/govuk-frontend-$GOVUK_VERSION/package"
cp "$gov/dist/govuk/govuk-frontend.min.css" "$gov/dist/govuk/govuk-frontend.min.js" "$vendor/govuk-frontend/"
cp -R "$gov/dist/govuk/assets" "$vendor/govuk-frontend/assets"
sed -i 's#url(/assets/#url(/static/vendor/govuk-frontend/assets/#g' "$vendor/govuk-frontend/govuk-frontend.min.css"
sed -n '/## Licence/,$p' "$gov/README.md" > "$vendor/govuk-frontend/LICENSE.txt"

moj="$work/ministryofjustice-frontend-$MOJ_VERSION/package"
cp "$moj/moj/moj-frontend.min.css" "$moj/moj/moj-frontend.min.js" "$vendor/moj-frontend/"
cp -R "$moj/moj/assets" "$vendor/moj-frontend/assets"
sed -i 's#url(/assets/#url(/static/vendor/moj-frontend/assets/#g' "$vendor/moj-frontend/moj-frontend.min.css"
# The MOJ package ships no licence file; its package.json declares MIT.
{
  echo "@ministryofjustice/frontend $MOJ_VERSION, MOJ Digital & Technology"
  echo "https://github.com/ministryofjustice/moj-frontend"
  echo "Licence declared in the package's package.json: $(node -p "require('$moj/package.json').license")"
  echo "(The MIT License: https://opensource.org/license/mit)"
} > "$vendor/moj-frontend/LICENSE.txt"

htmx="$work/htmx.org-$HTMX_VERSION/package"
cp "$htmx/dist/htmx.min.js" "$htmx/LICENSE" "$vendor/htmx/"

echo "vendored govuk-frontend $GOVUK_VERSION, @ministryofjustice/frontend $MOJ_VERSION, htmx.org $HTMX_VERSION into $vendor"
