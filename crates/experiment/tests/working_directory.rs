//! An experiment named by a bare file name, as `p2plab run e.yaml` in its own folder
//! gives it: `{experiment_dir}` is that folder. A test binary of its own, because it
//! changes the process's working directory.

use std::path::Path;

#[test]
fn a_bare_file_name_has_the_working_directory_as_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let body = "topology:\n  profiles: {p: {up: 1mbit, down: 1mbit}}\n  defaults: {profile: p}\n  groups: [{name: a, nodes: 1}]\nroles: []\nprepare: ['ls {experiment_dir}']\nstop: {after: 1m}\n";
    std::fs::write(dir.path().join("e.yaml"), body).unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let e = experiment::load(Path::new("e.yaml")).unwrap();
    let folder = dir.path().canonicalize().unwrap();
    assert_eq!(
        e.prepare_commands(Path::new("/r")),
        [vec!["ls".to_string(), folder.display().to_string()]]
    );
}
