# Sourced by the scripts: checks the Rust toolchain has what the checks need.
for tool in cargo rustfmt cargo-clippy; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1 && [ "$tool" != cargo ]; then
      rustup component add rustfmt clippy >/dev/null 2>&1 || true
    fi
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is missing (install Rust with rustup, then: rustup component add rustfmt clippy)" >&2; exit 1; }
  fi
done
