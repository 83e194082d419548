use serde_json::Value;

use super::schemas::{REFUSED_IN_NAMES, name_pattern};
use super::*;
use crate::domain::DisplayName;
use crate::fields::{UserField, UserFields};

fn config(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![(
        "SECRET_KEY",
        "openapi-unit-test-secret-0123456789abcdef".to_string(),
    )];
    all.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    Config::from_vars(all).expect("a valid configuration")
}

/// Every operation of `doc`: method, path and operation.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.push((method.as_str(), path.as_str(), op));
        }
    }
    ops
}

#[test]
fn every_operation_has_described_responses() {
    let doc = document(&config(&[]), &UserFields::default());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/auth/login"));
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path} has no responses");
        for (status, resp) in responses {
            assert!(
                resp["description"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty()),
                "{method} {path} {status} lacks a description"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
        "/api/auth/login"
    );
}

#[test]
fn operations_are_tagged_named_and_secured_as_declared() {
    let doc = document(&config(&[]), &UserFields::default());
    let declared: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let tags = op["tags"].as_array().unwrap();
        assert_eq!(tags.len(), 1, "{method} {path}: {tags:?}");
        assert!(
            declared.contains(&tags[0].as_str().unwrap()),
            "{method} {path}: undeclared tag {}",
            tags[0]
        );
        let id = op["operationId"].as_str().unwrap();
        assert!(ids.insert(id), "{method} {path}: operationId {id} repeats");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}: no summary"
        );
        // Only the protected operations say so, and they answer 401.
        if let Some(security) = op.get("security") {
            for requirement in security.as_array().unwrap() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        doc["components"]["securitySchemes"][scheme].is_object(),
                        "{method} {path}: unknown scheme {scheme}"
                    );
                }
            }
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
}

#[test]
fn every_schema_reference_resolves() {
    fn walk(value: &Value, doc: &Value, found: &mut usize) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(r)) = object.get("$ref") {
                    let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
                    assert!(
                        doc["components"]["schemas"][name].is_object(),
                        "{r} does not resolve"
                    );
                    *found += 1;
                }
                object.values().for_each(|v| walk(v, doc, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, doc, found)),
            _ => {}
        }
    }
    let doc = document(&config(&[]), &UserFields::default());
    let mut found = 0;
    walk(&doc, &doc, &mut found);
    assert!(found > 50, "only {found} references");
}

#[test]
fn the_name_pattern_refuses_what_display_names_refuse() {
    // Every character, between two letters so that trimming plays no part:
    // the schema's pattern excludes exactly those the parser refuses.
    let refused_by_pattern = |c: char| {
        REFUSED_IN_NAMES
            .iter()
            .any(|&(from, to)| (from..=to).contains(&c))
    };
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let refused = DisplayName::parse(Some(&format!("a{c}b")), "name").is_err();
        assert_eq!(
            refused,
            refused_by_pattern(c),
            "U+{:04X}: the parser {} it, the pattern does not",
            c as u32,
            if refused { "refuses" } else { "accepts" }
        );
    }
    let pattern = name_pattern();
    assert!(
        pattern.starts_with("^[^\\u0000-\\u001F\\u007F-\\u009F"),
        "{pattern}"
    );
    let doc = document(&config(&[]), &UserFields::default());
    let name = &doc["components"]["schemas"]["ProfileChanges"]["properties"]["name"];
    assert_eq!(name["pattern"], pattern.as_str());
    assert_eq!(name["maxLength"], crate::domain::MAX_NAME_CHARS);
}

#[test]
fn password_limits_come_from_the_configuration() {
    for (min, hasher) in [("8", "argon2id"), ("15", "bcrypt")] {
        let doc = document(
            &config(&[("PASSWORD_MIN_LENGTH", min), ("PASSWORD_HASHER", hasher)]),
            &UserFields::default(),
        );
        let text = doc.to_string();
        assert!(!text.contains("x-min-length-setting"), "a mark was left");
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("RegisterRequest", "password"),
            ("ChangePasswordRequest", "new_password"),
            ("ResetRequest", "new_password"),
            ("ResetForm", "new_password"),
            ("ResetForm", "confirm_password"),
        ] {
            let property = &schemas[schema]["properties"][field];
            assert_eq!(
                property["minLength"],
                min.parse::<u64>().unwrap(),
                "{schema}.{field}"
            );
            assert_eq!(property["maxLength"], 128, "{schema}.{field}");
            let description = property["description"].as_str().unwrap();
            assert!(
                description.contains(&format!("at least {min} ")),
                "{description}"
            );
            assert_eq!(
                description.contains("72 bytes"),
                hasher == "bcrypt",
                "{description}"
            );
        }
        // A password that logs in is any password: no limits there.
        for (schema, field) in [
            ("LoginJson", "password"),
            ("ChangePasswordRequest", "current_password"),
        ] {
            assert!(
                schemas[schema]["properties"][field]
                    .get("minLength")
                    .is_none(),
                "{schema}.{field}"
            );
        }
    }
}

#[test]
fn generic_arguments_refer_to_their_component() {
    let doc = document(&config(&[]), &UserFields::default());
    let schemas = &doc["components"]["schemas"];
    for (envelope, data) in [
        ("Envelope_User", "User"),
        ("Envelope_Message", "Message"),
        ("Envelope_TokenPair", "TokenPair"),
    ] {
        assert_eq!(
            schemas[envelope]["properties"]["data"]["$ref"],
            format!("#/components/schemas/{data}"),
            "{envelope}"
        );
    }
    let sessions = &schemas["Envelope_Vec_Session"]["properties"]["data"];
    assert_eq!(sessions["items"]["$ref"], "#/components/schemas/Session");
}

#[test]
fn the_applications_own_fields_are_documented() {
    let mut fields = UserFields::default();
    fields.push(UserField::string("phone", 20));
    fields.push(UserField::integer("age").required());
    let doc = document(&config(&[]), &fields);
    let schemas = &doc["components"]["schemas"];
    for schema in ["User", "RegisterRequest", "ProfileChanges"] {
        let phone = &schemas[schema]["properties"]["phone"];
        assert_eq!(
            phone["type"],
            serde_json::json!(["string", "null"]),
            "{schema}"
        );
        assert_eq!(phone["maxLength"], 20, "{schema}");
        assert_eq!(
            schemas[schema]["properties"]["age"]["type"], "integer",
            "{schema}"
        );
    }
    let required = |schema: &str| {
        schemas[schema]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(required("RegisterRequest").contains(&"age".into()));
    assert!(!required("RegisterRequest").contains(&"phone".into()));
    assert!(!required("User").contains(&"age".into()));
    assert!(!required("ProfileChanges").contains(&"age".into()));
    // Without declared fields, none of these appear.
    let plain = document(&config(&[]), &UserFields::default());
    assert!(plain["components"]["schemas"]["User"]["properties"]["phone"].is_null());
}
