//! Invalid look files through the real binary: `scope-deck --check-config --config-dir <dir>`
//! with the fixture as `<dir>/looks/<name>.toml` must exit 3 naming file:line:column and key.
//! Each fixture states what it expects on its first line: `# expect: <line> <key>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fixtures;

#[test]
fn invalid_looks_fail_the_config_check_with_file_line_column_and_key() {
    fixtures::each_fails_located("looks/invalid", 8, &|f, dir| {
        (fixtures::copy_into(f, dir, "looks"), Vec::new())
    });
}
