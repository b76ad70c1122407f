//! `switchyard plugin build`: builds a plugin project in Rust, Python or JavaScript into a
//! component, then proves it loads in this host (compiled, linked against exactly the
//! imports the host provides, type-checked and instantiated once), which `inspect`
//! alone cannot: a component that imports `wasi:http` inspects fine and fails to link.
//!
//! The language is read from the project: `Cargo.toml` is Rust (built for
//! `wasm32-wasip2` with cargo); otherwise `switchyard-plugin.toml` names it:
//!
//! ```toml
//! name = "tiered-router"   # the plugin's name: the output is NAME.wasm
//! kind = "router"          # adapter | router | filter (the WIT world)
//! language = "python"      # python | js
//! entry = "app"            # python: the module (default `app`); js: the file (default `src/plugin.js`)
//! ```
//!
//! Python uses `componentize-py` (on `PATH`, or `$COMPONENTIZE_PY`); JavaScript uses the
//! project's own `jco` (`node_modules/.bin/jco`, from its `package.json`), else `$JCO`.
//! The pinned versions are in `sdk/python/requirements.txt` and `sdk/js/package.json`. The WIT handed
//! to both is the one compiled into this binary, so a plugin always builds against the
//! contract of the host that will run it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::plugins::loader::PluginPolicy;
use crate::plugins::{Loader, PluginName};
use crate::sandbox::{Sandbox, SandboxSettings};

/// The WIT of every world, as released (`wit/v0.1.0`), written out for the toolchains.
pub const WIT_FILES: &[(&str, &str)] = &[
    (
        "adapter.wit",
        include_str!("../../../wit/v0.1.0/adapter.wit"),
    ),
    ("filter.wit", include_str!("../../../wit/v0.1.0/filter.wit")),
    ("host.wit", include_str!("../../../wit/v0.1.0/host.wit")),
    ("router.wit", include_str!("../../../wit/v0.1.0/router.wit")),
    ("types.wit", include_str!("../../../wit/v0.1.0/types.wit")),
    ("worlds.wit", include_str!("../../../wit/v0.1.0/worlds.wit")),
];

/// The componentize-py release the docs and tests use.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Language {
    Python,
    Js,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Adapter,
    Router,
    Filter,
}

impl Kind {
    fn world(self) -> &'static str {
        match self {
            Kind::Adapter => "adapter-plugin",
            Kind::Router => "router-plugin",
            Kind::Filter => "filter-plugin",
        }
    }
}

/// `switchyard-plugin.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    kind: Kind,
    language: Language,
    entry: Option<String>,
}

pub const MANIFEST: &str = "switchyard-plugin.toml";

/// Builds the project in `dir` into `out/NAME.wasm` and checks it loads. Prints what it
/// built.
pub fn build(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open project {}", dir.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = out.canonicalize()?;
    let started = Instant::now();
    let (name, wasm) = if dir.join("Cargo.toml").is_file() {
        build_rust(&dir)?
    } else if dir.join(MANIFEST).is_file() {
        let text = std::fs::read_to_string(dir.join(MANIFEST))?;
        let m: Manifest =
            toml::from_str(&text).with_context(|| format!("{}", dir.join(MANIFEST).display()))?;
        if PluginName::parse(&m.name).is_none() {
            bail!(
                "{MANIFEST}: name `{}` must be lower-case letters, digits and single `-`, \
                 starting with a letter (it becomes the file name in the plugins folder)",
                m.name
            );
        }
        let scratch = tempfile::tempdir()?;
        let wit = scratch.path().join("wit");
        std::fs::create_dir_all(&wit)?;
        for (file, text) in WIT_FILES {
            std::fs::write(wit.join(file), text)?;
        }
        let built = scratch.path().join(format!("{}.wasm", m.name));
        match m.language {
            Language::Python => build_python(&dir, &m, &wit, &built)?,
            Language::Js => build_js(&dir, &m, &wit, &built)?,
        }
        (m.name, std::fs::read(&built)?)
    } else {
        bail!(
            "{}: no Cargo.toml (Rust) or {MANIFEST} (Python, JavaScript) here; \
             `switchyard plugin new` writes a project",
            dir.display()
        );
    };
    let took = started.elapsed();
    let report = validate(&name, &wasm)?;
    let dest = out.join(format!("{name}.wasm"));
    // Written beside and renamed, so a gateway watching `out` never loads half a file.
    let tmp = out.join(format!(".{name}.wasm.tmp"));
    std::fs::write(&tmp, &wasm)?;
    std::fs::rename(&tmp, &dest)?;
    println!(
        "built {} in {:.1} s: {report}",
        dest.display(),
        took.as_secs_f64()
    );
    Ok(())
}

/// Compiles, links and instantiates the component as the gateway would; the summary.
fn validate(name: &str, wasm: &[u8]) -> anyhow::Result<String> {
    let sandbox = Sandbox::new(SandboxSettings::default())
        .map_err(|e| anyhow::anyhow!("cannot start the sandbox: {e}"))?;
    let loader = Loader::new(sandbox, None, PluginPolicy::default());
    let plugin_name = PluginName::parse(name).context("plugin name")?;
    let loaded = loader
        .load(plugin_name, wasm)
        .map_err(|e| anyhow::anyhow!("the component does not load in this host: {e}"))?;
    Ok(format!(
        "{} plugin, WIT {}, {:.1} MB, sha256 {}; loads in this host",
        loaded.kind.interface(),
        loaded.wit_version,
        wasm.len() as f64 / 1e6,
        &loaded.sha256[..12]
    ))
}

/// Runs `cmd`, failing with its output when it fails and `hint` when it cannot start.
fn run(mut cmd: Command, hint: &str) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{hint}"),
        Err(e) => return Err(e).with_context(|| format!("cannot run {shown}")),
    };
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct Metadata {
    target_directory: PathBuf,
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
}

fn build_rust(dir: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let manifest = dir.join("Cargo.toml");
    let meta = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("cannot run cargo (install Rust from https://rustup.rs)")?;
    if !meta.status.success() {
        bail!("cargo metadata: {}", String::from_utf8_lossy(&meta.stderr));
    }
    let meta: Metadata = serde_json::from_slice(&meta.stdout).context("cargo metadata")?;
    let package = meta
        .packages
        .iter()
        .find(|p| p.manifest_path == manifest)
        .context("Cargo.toml has no [package] (a workspace root is not a plugin)")?;
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(&manifest);
    run(
        cmd,
        "cargo not found: install Rust (https://rustup.rs), then `rustup target add wasm32-wasip2`",
    )
    .context("add the target with `rustup target add wasm32-wasip2` if it is missing")?;
    let file = meta
        .target_directory
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.name.replace('-', "_")));
    let wasm = std::fs::read(&file).with_context(|| {
        format!(
            "{} was not produced (is the crate a cdylib?)",
            file.display()
        )
    })?;
    Ok((package.name.clone(), wasm))
}

fn build_python(dir: &Path, m: &Manifest, wit: &Path, out: &Path) -> anyhow::Result<()> {
    let tool = std::env::var_os("COMPONENTIZE_PY").unwrap_or_else(|| "componentize-py".into());
    let mut cmd = Command::new(&tool);
    cmd.current_dir(dir)
        .arg("-d")
        .arg(wit)
        .args(["-w", m.kind.world(), "componentize"])
        .arg(m.entry.as_deref().unwrap_or("app"))
        .arg("-o")
        .arg(out);
    run(
        cmd,
        &format!(
            "componentize-py not found: `pip install {COMPONENTIZE_PY}` (or set COMPONENTIZE_PY \
             to its path)"
        ),
    )
}

fn build_js(dir: &Path, m: &Manifest, wit: &Path, out: &Path) -> anyhow::Result<()> {
    let local = dir.join("node_modules/.bin/jco");
    let jco = if local.exists() {
        local
    } else if let Some(jco) = std::env::var_os("JCO") {
        PathBuf::from(jco)
    } else {
        bail!(
            "{} not found: run `npm install` in {} (its package.json pins jco and \
             componentize-js), or set JCO to a jco binary",
            local.display(),
            dir.display()
        );
    };
    let entry = dir.join(m.entry.as_deref().unwrap_or("src/plugin.js"));
    let mut cmd = Command::new(jco);
    // Paths absolute: jco resolves them from the entry file's folder. `-d http
    // fetch-event` drops the `wasi:http` imports ComponentizeJS adds by default, which this
    // host does not link (plugins get no network); console.log still reaches the log.
    cmd.current_dir(dir)
        .arg("componentize")
        .arg(&entry)
        .arg("-w")
        .arg(wit)
        .args(["-n", m.kind.world(), "-d", "http", "fetch-event", "-o"])
        .arg(out);
    run(cmd, "node not found: install Node.js 20 or newer")
}

/// One file of a project template: its path in the project and its text, where
/// `{{name}}` becomes the plugin's name and `{{sdk}}` the SDK dependency.
type Template = (&'static str, &'static str);

const RUST_ROUTER: &[Template] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("templates/rust/router.rs")),
];
const RUST_ADAPTER: &[Template] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("templates/rust/adapter.rs")),
];
const RUST_FILTER: &[Template] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("templates/rust/filter.rs")),
];
const PYTHON_ROUTER: &[Template] = &[
    ("app.py", include_str!("templates/python/router.py")),
    (
        "test_app.py",
        include_str!("templates/python/router_test.py"),
    ),
];
const PYTHON_ADAPTER: &[Template] = &[
    ("app.py", include_str!("templates/python/adapter.py")),
    (
        "adapter.py",
        include_str!("templates/python/adapter_stream.py"),
    ),
    (
        "test_app.py",
        include_str!("templates/python/adapter_test.py"),
    ),
];
const PYTHON_FILTER: &[Template] = &[
    ("app.py", include_str!("templates/python/filter.py")),
    ("filter.py", include_str!("templates/python/stream.py")),
    (
        "test_app.py",
        include_str!("templates/python/filter_test.py"),
    ),
];
const JS_COMMON: &[Template] = &[
    ("package.json", include_str!("templates/js/package.json")),
    (
        "support/host-stub.mjs",
        include_str!("templates/js/host-stub.mjs"),
    ),
    (
        "support/register.mjs",
        include_str!("templates/js/register.mjs"),
    ),
];
const JS_ROUTER: &[Template] = &[
    ("src/plugin.js", include_str!("templates/js/router.js")),
    (
        "test/plugin.test.mjs",
        include_str!("templates/js/router.test.mjs"),
    ),
];
const JS_ADAPTER: &[Template] = &[
    ("src/plugin.js", include_str!("templates/js/adapter.js")),
    (
        "test/plugin.test.mjs",
        include_str!("templates/js/adapter.test.mjs"),
    ),
];
const JS_FILTER: &[Template] = &[
    ("src/plugin.js", include_str!("templates/js/filter.js")),
    (
        "test/plugin.test.mjs",
        include_str!("templates/js/filter.test.mjs"),
    ),
];

/// `switchyard plugin new`: writes a working project for an adapter, router or filter in
/// Rust, Python or JavaScript into `parent/NAME`, with unit tests and a README saying how
/// to test and build it.
pub fn new(
    name: &str,
    lang: &str,
    kind: &str,
    parent: &Path,
    sdk: Option<&Path>,
) -> anyhow::Result<()> {
    if PluginName::parse(name).is_none() {
        bail!(
            "plugin name `{name}`: lower-case letters, digits and single `-`, starting with a \
             letter (it becomes the file name in the plugins folder)"
        );
    }
    let kind = match kind {
        "router" => Kind::Router,
        "filter" => Kind::Filter,
        "adapter" => Kind::Adapter,
        other => bail!("--kind: `{other}` is not router, filter or adapter"),
    };
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk_dep = match sdk {
        Some(p) => {
            let p = p
                .canonicalize()
                .with_context(|| format!("--sdk {}", p.display()))?;
            format!("{{ path = {:?} }}", p.display().to_string())
        }
        None => "{ git = \"https://github.com/switchyard-gateway/switchyard\" }".to_owned(),
    };
    let (files, readme): (Vec<Template>, String) = match (lang, kind) {
        ("rust", k) => (
            match k {
                Kind::Router => RUST_ROUTER,
                Kind::Filter => RUST_FILTER,
                Kind::Adapter => RUST_ADAPTER,
            }
            .to_vec(),
            "Test: `cargo test`\n\nBuild into a gateway's plugins folder:\n\n    \
             switchyard plugin build . --out PLUGINS_DIR\n\nNeeds Rust and `rustup target \
             add wasm32-wasip2`. The SDK's docs: `cargo doc -p switchyard-sdk --open`.\n"
                .to_owned(),
        ),
        ("python", k) => (
            match k {
                Kind::Router => PYTHON_ROUTER,
                Kind::Filter => PYTHON_FILTER,
                Kind::Adapter => PYTHON_ADAPTER,
            }
            .to_vec(),
            format!(
                "Needs `pip install {COMPONENTIZE_PY}`.\n\nTest (natively, against generated \
                 bindings):\n\n    componentize-py -d wit -w {world} bindings .bindings\n    \
                 PYTHONPATH=.bindings python3 -m unittest\n\nBuild into a gateway's plugins \
                 folder:\n\n    switchyard plugin build . --out PLUGINS_DIR\n\n`print()` \
                 lines appear in the gateway's log under the plugin's name. Never call `host` \
                 functions at import time: componentize-py runs the module while building.\n",
                world = kind.world()
            ),
        ),
        ("js", k) => (
            JS_COMMON
                .iter()
                .chain(match k {
                    Kind::Router => JS_ROUTER,
                    Kind::Filter => JS_FILTER,
                    Kind::Adapter => JS_ADAPTER,
                })
                .copied()
                .collect(),
            "Needs Node.js 20+.\n\nTest:\n\n    npm install\n    npm test\n\nBuild into a \
             gateway's plugins folder:\n\n    switchyard plugin build . --out PLUGINS_DIR\n\n\
             `console.log` lines appear in the gateway's log under the plugin's name. The \
             build passes `-d http fetch-event` to jco: ComponentizeJS imports `wasi:http` \
             unless told not to, and the gateway gives plugins no network.\n"
                .to_owned(),
        ),
        (other, _) => bail!("--lang: `{other}` is not rust, python or js"),
    };
    let fill = |text: &str| text.replace("{{name}}", name).replace("{{sdk}}", &sdk_dep);
    let write = |path: &str, text: &str| -> anyhow::Result<()> {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    };
    for (path, text) in &files {
        write(path, &fill(text))?;
    }
    let kind_name = match kind {
        Kind::Router => "router",
        Kind::Filter => "filter",
        Kind::Adapter => "adapter",
    };
    if lang != "rust" {
        write(
            MANIFEST,
            &format!("name = \"{name}\"\nkind = \"{kind_name}\"\nlanguage = \"{lang}\"\n"),
        )?;
        // The contract, for bindings and editors; the build uses the gateway's own copy.
        for (file, text) in WIT_FILES {
            write(&format!("wit/{file}"), text)?;
        }
        write(
            ".gitignore",
            "*.wasm\n.bindings/\n__pycache__/\nnode_modules/\n",
        )?;
    }
    write(
        "README.md",
        &format!("# {name}\n\nA Switchyard {kind_name} plugin in {lang}.\n\n{readme}"),
    )?;
    println!(
        "wrote {} ({lang} {kind_name}); see its README.md",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_is_the_released_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/v0.1.0");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("wit folder")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = WIT_FILES.iter().map(|(f, _)| *f).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn a_folder_that_is_no_project_says_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = build(dir.path(), dir.path()).unwrap_err().to_string();
        assert!(e.contains("no Cargo.toml") && e.contains(MANIFEST), "{e}");
        std::fs::write(
            dir.path().join(MANIFEST),
            "name = \"x\"\nkind = \"router\"\nlanguage = \"cobol\"\n",
        )
        .expect("write");
        let e = format!("{:#}", build(dir.path(), dir.path()).unwrap_err());
        assert!(e.contains("cobol"), "{e}");
    }

    #[test]
    fn a_missing_toolchain_is_named_with_how_to_get_it() {
        if std::env::var_os("JCO").is_some() {
            return; // The fallback is set: nothing is missing.
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(MANIFEST),
            "name = \"x\"\nkind = \"filter\"\nlanguage = \"js\"\n",
        )
        .expect("write");
        let e = build(dir.path(), dir.path()).unwrap_err().to_string();
        assert!(e.contains("npm install"), "{e}");
    }
}
