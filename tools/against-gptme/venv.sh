# Sourced by the tools here: a venv under target/ with the gptme they compare against, by
# default the release convmeta reproduces. GPTME_VERSION=0.35.2.dev20261022 (say) checks
# another one; each version has its own venv. Sets $venv and $gptme_version.
gptme_version=${GPTME_VERSION:-0.35.1}
venv=$root/target/gptme-venv-$gptme_version
if [ ! -x "$venv/bin/gptme-server" ]; then
  python3 -m venv "$venv"
  # --pre: a development release is asked for by its exact version, but its dependencies may
  # be pre-releases too.
  "$venv/bin/pip" install -q --pre "gptme[server]==$gptme_version"
fi
echo "against gptme $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("gptme"))')" >&2
