//! Text protos as conftest's `textproto` parser gives them: the message type named by the
//! file's `# proto-message: pkg.Message` comment, looked up among the messages of the `.proto`
//! files under `--proto-file-dirs` (read by protobuf-parse, no `protoc`), the text read into it
//! (protobuf's text format) and printed as protobuf's JSON with the fields' proto names.

use std::path::PathBuf;
use std::sync::OnceLock;

use protobuf::reflect::FileDescriptor;
use serde_json::Value;

/// The directories `--proto-file-dirs` named (one command per process: set once).
static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
/// Their messages, read on first use.
static FILES: OnceLock<Result<Vec<FileDescriptor>, String>> = OnceLock::new();

/// `--proto-file-dirs`.
pub fn set_dirs(dirs: Vec<PathBuf>) {
    let _ = DIRS.set(dirs);
}

fn load(dirs: &[PathBuf]) -> Result<Vec<FileDescriptor>, String> {
    let mut files = Vec::new();
    for dir in dirs {
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "proto")
            {
                files.push(entry.path().to_path_buf());
            }
        }
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let parsed = protobuf_parse::Parser::new()
        .pure()
        .includes(dirs)
        .inputs(&files)
        .parse_and_typecheck()
        .map_err(|e| format!("load protos: {e:#}"))?;
    FileDescriptor::new_dynamic_fds(parsed.file_descriptors, &[])
        .map_err(|e| format!("load protos: {e}"))
}

/// The message type a text proto names (`# proto-message: NAME`).
fn message_type(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim_start().strip_prefix('#')?.trim_start();
        Some(l.strip_prefix("proto-message:")?.trim().to_string())
    })
}

/// A text proto as its message's JSON (proto field names).
pub fn textproto(text: &str) -> Result<Value, String> {
    let name = message_type(text)
        .ok_or("extract proto message type: no `# proto-message: NAME` comment".to_string())?;
    let dirs = DIRS.get().map(Vec::as_slice).unwrap_or_default();
    let files = FILES
        .get_or_init(|| load(dirs))
        .as_ref()
        .map_err(Clone::clone)?;
    let descriptor = files
        .iter()
        .find_map(|f| {
            f.message_by_full_name(&format!(".{name}"))
                .or_else(|| f.message_by_full_name(&name))
        })
        .ok_or_else(|| {
            format!(
                "look up message type {name:?}: not found{}",
                if dirs.is_empty() {
                    " (no --proto-file-dirs given)"
                } else {
                    " in the .proto files of --proto-file-dirs"
                }
            )
        })?;
    let mut message = descriptor.new_instance();
    protobuf::text_format::merge_from_str(&mut *message, text)
        .map_err(|e| format!("unmarshal textproto: {e}"))?;
    let options = protobuf_json_mapping::PrintOptions {
        proto_field_name: true,
        ..Default::default()
    };
    let json = protobuf_json_mapping::print_to_string_with_options(&*message, &options)
        .map_err(|e| format!("marshal JSON: {e}"))?;
    serde_json::from_str(&json).map_err(|e| format!("marshal JSON: {e}"))
}
