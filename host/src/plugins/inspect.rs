//! Reads what a `.wasm` file is without compiling it: component or core module, the
//! interfaces it imports and exports, and from the export names its plugin kind and WIT
//! version. Used by the loader (to reject bad files before spending time compiling) and
//! by `switchyard plugin inspect`.

use std::fmt;

use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use super::{SUPPORTED_WIT_VERSIONS, compatible_wit_version};

/// The WIT package plugins export from.
pub const PACKAGE: &str = "switchyard:plugin";

/// The three plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Adapter,
    Router,
    Filter,
}

impl PluginKind {
    pub const ALL: [PluginKind; 3] = [PluginKind::Adapter, PluginKind::Router, PluginKind::Filter];

    /// The exported interface's name within the package.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Adapter => "adapter",
            PluginKind::Router => "router",
            PluginKind::Filter => "filter",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.interface())
    }
}

/// What a file is, read without compiling it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub size: u64,
    pub sha256: String,
    /// `component` or `module`.
    pub encoding: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Why a file is not a loadable plugin.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InspectError {
    #[error(
        "not a WebAssembly file (the file is empty or does not start with the wasm magic bytes)"
    )]
    NotWasm,
    #[error("the file is not valid WebAssembly (truncated or corrupt?): {0}")]
    Malformed(String),
    #[error(
        "this is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error(
        "the component exports no Switchyard plugin interface (exports: {exports}); it must export one of {PACKAGE}/adapter, /router or /filter"
    )]
    WrongWorld { exports: String },
    #[error(
        "the component exports {export}, but this host supports WIT version(s) {supported} and semver-compatible ones (0.1.z)"
    )]
    UnsupportedVersion { export: String, supported: String },
    #[error(
        "the component exports more than one plugin interface ({0}); a plugin is exactly one kind"
    )]
    SeveralKinds(String),
}

/// Parses the top level of a component or module.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(InspectError::NotWasm);
    }
    let mut encoding = None;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components repeat Version/End payloads; only depth 1 is ours.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::Malformed(e.to_string()))?;
        match payload {
            Payload::Version { encoding: enc, .. } => {
                depth += 1;
                if depth == 1 {
                    encoding = Some(enc);
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(s) if depth == 1 => {
                for import in s {
                    let import = import.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(s) if depth == 1 => {
                for export in s {
                    let export = export.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            Payload::ImportSection(s) if depth == 1 => {
                for import in s.into_imports() {
                    let import = import.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    imports.push(format!("{}::{}", import.module, import.name));
                }
            }
            Payload::ExportSection(s) if depth == 1 => {
                for export in s {
                    let export = export.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    exports.push(export.name.to_owned());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(InspectError::Malformed("unexpected end of file".into()));
    }
    let encoding = match encoding {
        Some(Encoding::Component) => "component",
        Some(Encoding::Module) => "module",
        None => return Err(InspectError::NotWasm),
    };
    Ok(Inspection {
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        encoding,
        imports,
        exports,
    })
}

impl Inspection {
    /// The plugin kind and WIT version, from the exported interface's name
    /// (`switchyard:plugin/adapter@0.1.0`), so any toolchain works without SDK help.
    pub fn plugin_kind(&self) -> Result<(PluginKind, String), InspectError> {
        if self.encoding != "component" {
            return Err(InspectError::CoreModule);
        }
        let mut found = Vec::new();
        for export in &self.exports {
            let Some(rest) = export
                .strip_prefix(PACKAGE)
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
            let Some(kind) = PluginKind::ALL.into_iter().find(|k| k.interface() == iface) else {
                continue;
            };
            if compatible_wit_version(version).is_none() {
                return Err(InspectError::UnsupportedVersion {
                    export: export.clone(),
                    supported: SUPPORTED_WIT_VERSIONS.join(", "),
                });
            }
            found.push((kind, version.to_owned(), export.clone()));
        }
        match found.len() {
            0 => Err(InspectError::WrongWorld {
                exports: if self.exports.is_empty() {
                    "none".into()
                } else {
                    self.exports.join(", ")
                },
            }),
            1 => {
                let (kind, version, _) = found.remove(0);
                Ok((kind, version))
            }
            _ => Err(InspectError::SeveralKinds(
                found
                    .into_iter()
                    .map(|f| f.2)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_are_not_wasm() {
        assert_eq!(inspect(b"").unwrap_err(), InspectError::NotWasm);
        assert_eq!(
            inspect(b"hello world, not wasm").unwrap_err(),
            InspectError::NotWasm
        );
    }

    #[test]
    fn truncated_header_is_malformed() {
        // Magic and a component version, then a section header promising more bytes.
        let bytes = [0, b'a', b's', b'm', 0x0d, 0, 1, 0, 7, 100, 1, 2];
        assert!(matches!(
            inspect(&bytes).unwrap_err(),
            InspectError::Malformed(_)
        ));
    }

    #[test]
    fn core_module_is_named_as_such() {
        let module = [0, b'a', b's', b'm', 1, 0, 0, 0];
        let i = inspect(&module).unwrap();
        assert_eq!(i.encoding, "module");
        assert_eq!(i.plugin_kind().unwrap_err(), InspectError::CoreModule);
    }

    fn exports(names: &[&str]) -> Inspection {
        Inspection {
            size: 0,
            sha256: String::new(),
            encoding: "component",
            imports: vec![],
            exports: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn kind_and_version_come_from_export_names() {
        let (k, v) = exports(&["switchyard:plugin/router@0.1.0"])
            .plugin_kind()
            .unwrap();
        assert_eq!((k, v.as_str()), (PluginKind::Router, "0.1.0"));
        // A semver-compatible patch release loads; another minor of 0.x does not.
        let (k, v) = exports(&["switchyard:plugin/filter@0.1.7"])
            .plugin_kind()
            .unwrap();
        assert_eq!((k, v.as_str()), (PluginKind::Filter, "0.1.7"));
        for unsupported in ["9.0.0", "0.2.0", "0.0.9", "0.1", "0.1.x", ""] {
            assert!(
                matches!(
                    exports(&[&format!("switchyard:plugin/router@{unsupported}")]).plugin_kind(),
                    Err(InspectError::UnsupportedVersion { .. })
                ),
                "{unsupported}"
            );
        }
        assert!(matches!(
            exports(&["wasi:http/incoming-handler@0.2.0"]).plugin_kind(),
            Err(InspectError::WrongWorld { .. })
        ));
        assert!(matches!(
            exports(&[
                "switchyard:plugin/router@0.1.0",
                "switchyard:plugin/filter@0.1.0"
            ])
            .plugin_kind(),
            Err(InspectError::SeveralKinds(_))
        ));
    }
}
