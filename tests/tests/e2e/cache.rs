//! The compiled-artifact cache: a restart with a warm cache does not recompile.

use switchyard::plugins::cache::ArtifactCache;
use switchyard::plugins::loader::PluginPolicy;
use switchyard::plugins::{CodeSource, Loader, PluginName};
use switchyard::sandbox::{Sandbox, SandboxSettings};
use switchyard_tests::fixture;

fn fresh_loader(cache: &std::path::Path) -> Loader {
    // A new engine each time, as after a process restart.
    let sandbox = Sandbox::new(SandboxSettings {
        max_instances: 16,
        ..Default::default()
    })
    .expect("sandbox");
    Loader::new(
        sandbox,
        Some(ArtifactCache::open(cache, &cache.join("..").join("no-plugins")).expect("cache")),
        PluginPolicy::default(),
    )
}

#[test]
fn restart_with_warm_cache_does_not_recompile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(fixture("fx-echo")).expect("read");
    let name = PluginName::parse("echo").expect("name");

    let first = fresh_loader(dir.path());
    let p = first.load(name.clone(), &bytes).expect("load");
    assert_eq!(p.source, CodeSource::Compiled);
    assert_eq!(
        first.counts(),
        (1, 0),
        "(compiled, cache hits) on a cold cache"
    );

    let second = fresh_loader(dir.path());
    let p = second.load(name.clone(), &bytes).expect("load");
    assert_eq!(p.source, CodeSource::Cache);
    assert_eq!(
        second.counts(),
        (0, 1),
        "(compiled, cache hits) after a restart"
    );
    // The cached plugin really works.
    assert!(p.adapter().is_ok());
}

#[test]
fn damaged_cache_entry_is_recompiled_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(fixture("fx-echo")).expect("read");
    let name = PluginName::parse("echo").expect("name");
    fresh_loader(dir.path())
        .load(name.clone(), &bytes)
        .expect("load");
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        std::fs::write(&path, b"not an artifact").expect("damage");
    }
    let l = fresh_loader(dir.path());
    let p = l.load(name, &bytes).expect("load");
    assert_eq!(p.source, CodeSource::Compiled);
    assert_eq!(l.counts(), (1, 0));
}
