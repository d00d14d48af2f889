//! Every input the fuzz targets found a failure with (`tests/data/fuzz/<target>-<what>`), replayed through the
//! same checks (`fuzz/checks.rs`, included here by path). A new crash is added here with a name that says what it broke.

#[path = "../fuzz/checks.rs"]
mod checks;

#[test]
fn every_saved_fuzz_input_passes_its_target() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");
    let mut ran = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        match name.split_once('-').map(|(target, _)| target) {
            Some("translate") => checks::translate(&data),
            #[cfg(feature = "sources")]
            Some("json_lines") => checks::json_lines(&data),
            #[cfg(not(feature = "sources"))]
            Some("json_lines") => continue,
            _ => panic!("{name}: name it <target>-<what it broke>"),
        }
        ran += 1;
    }
    assert!(ran >= 2, "the saved inputs were not found in {dir}");
}
