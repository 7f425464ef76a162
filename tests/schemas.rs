//! The JSON Schemas in docs/ are generated from the Rust types (`vethscope::schemas`):
//! a committed file that differs from what the types generate fails here. No root needed.

use std::path::Path;

use serde_json::Value;

fn docs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs"))
}

#[test]
fn committed_schemas_are_the_generated_ones() {
    let mut stale = Vec::new();
    for schema in vethscope::schemas::all() {
        let path = docs().join(schema.file);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == schema.text => {}
            Ok(_) => stale.push(format!(
                "docs/{} differs from the schema the Rust types generate",
                schema.file
            )),
            Err(e) => stale.push(format!("docs/{}: cannot read it: {e}", schema.file)),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nrun `cargo xtask schemas` to regenerate the files in docs/ (and commit them)",
        stale.join("\n")
    );
}

/// Every generated schema is a valid draft 2020-12 schema (checked against the
/// meta-schema by an independent implementation).
#[test]
fn generated_schemas_are_valid_draft_2020_12() {
    for schema in vethscope::schemas::all() {
        let value: Value = serde_json::from_str(&schema.text).expect("generated schema is JSON");
        assert_eq!(
            value["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{}",
            schema.file
        );
        if let Err(e) = jsonschema::meta::options().validate(&value) {
            panic!("{} is not a valid JSON Schema: {e}", schema.file);
        }
        jsonschema::options()
            .should_validate_formats(true)
            .build(&value)
            .unwrap_or_else(|e| panic!("{} does not compile: {e}", schema.file));
    }
}
