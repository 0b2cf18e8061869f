//! The programs against this kernel (as root): the verifier accepts all of them, they
//! attach to a scratch cgroup and are gone after detaching.

use cgroup::{Hierarchies, RunGroup};
use sockbpf::Isolation;

#[test]
fn the_programs_load_attach_and_detach() {
    let h = Hierarchies::detect().unwrap();
    let run = RunGroup::create(&h, &format!("sockbpf-kernel-{}", std::process::id())).unwrap();
    let dir = sockbpf::v2_dir(&run).unwrap().to_path_buf();
    let isolation = Isolation::attach(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sockbpf::attached_count(&dir).unwrap(), 5);
    isolation.detach().unwrap();
    assert_eq!(sockbpf::attached_count(&dir).unwrap(), 0);
    run.remove().unwrap();
}
