#!/usr/bin/env bash
# chart-readme.sh: regenerate the values table of charts/bloodraven/README.md from the
# chart's values.schema.json (and the defaults in values.yaml). The generator is the test
# that checks the table (tests/it/chart.rs, readme_values_table_is_the_schema), so the two
# cannot disagree: with BLOODRAVEN_BLESS=1 it rewrites the table instead of comparing.
set -euo pipefail
cd "$(dirname "$0")/.."
BLOODRAVEN_BLESS=1 exec cargo nextest run -E 'test(=chart::readme_values_table_is_the_schema)'
