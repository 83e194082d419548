//! Schemas of values that several request types share, built from the rules
//! they follow: display names (SPEC §4) and new passwords, whose shortest
//! length is a setting and is filled in by [`apply_password_limits`].

use serde_json::{Value, json};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};

use crate::config::{HasherKind, PasswordConfig};
use crate::domain::{MAX_EMAIL_CHARS, MAX_NAME_CHARS};
use crate::fields::{FieldKind, UserField, UserFields};
use crate::password::MAX_PASSWORD_CHARS;

/// The characters a display name may not contain: control characters and
/// the invisible formatting ones, except the zero-width (non-)joiners that
/// some scripts and emoji sequences need (see
/// [`DisplayName`](crate::domain::DisplayName); a unit test holds the two
/// together).
pub(crate) const REFUSED_IN_NAMES: &[(char, char)] = &[
    ('\u{0000}', '\u{001F}'),
    ('\u{007F}', '\u{009F}'),
    ('\u{00AD}', '\u{00AD}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200B}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

/// An ECMA-262 pattern that matches the strings without [`REFUSED_IN_NAMES`].
pub(crate) fn name_pattern() -> String {
    let class: String = REFUSED_IN_NAMES
        .iter()
        .map(|&(from, to)| {
            if from == to {
                format!("\\u{:04X}", from as u32)
            } else {
                format!("\\u{:04X}-\\u{:04X}", from as u32, to as u32)
            }
        })
        .collect();
    format!("^[^{class}]*$")
}

/// A display name: a string or `null`.
pub fn display_name() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(name_pattern()))
        .description(Some(format!(
            "The display name: at most {MAX_NAME_CHARS} characters once trimmed, without \
             control or invisible formatting characters. Blank or `null` means none."
        )))
        .build()
}

/// Marks a schema whose `minLength` is `PASSWORD_MIN_LENGTH`.
const MIN_LENGTH_MARK: &str = "x-min-length-setting";

/// A new password. Its shortest length and description depend on the
/// configuration: [`apply_password_limits`] fills them in.
pub fn new_password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_PASSWORD_CHARS))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add(MIN_LENGTH_MARK, "PASSWORD_MIN_LENGTH")
                .build(),
        ))
        .build()
}

/// Gives every new-password schema of `doc` (see [`new_password`]) the
/// limits of `password`: `minLength` and a description of the policy.
pub fn apply_password_limits(doc: &mut Value, password: &PasswordConfig) {
    match doc {
        Value::Object(object) => {
            if object.remove(MIN_LENGTH_MARK).is_some() {
                object.insert("minLength".into(), password.min_length.into());
                object.insert("description".into(), policy(password).into());
            }
            object
                .values_mut()
                .for_each(|v| apply_password_limits(v, password));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| apply_password_limits(v, password)),
        _ => {}
    }
}

/// The password policy of SPEC §4 in words.
fn policy(password: &PasswordConfig) -> String {
    let bcrypt = if password.hasher == HasherKind::Bcrypt {
        " and at most 72 bytes (bcrypt)"
    } else {
        ""
    };
    format!(
        "A new password: at least {} and at most {MAX_PASSWORD_CHARS} characters{bcrypt}; \
         not one of the 10,000 most common passwords, and not the e-mail address.",
        password.min_length
    )
}

/// An e-mail address as registration and the mailbox flows take it.
pub fn email_address() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(MAX_EMAIL_CHARS))
        .description(Some(
            "An e-mail address, trimmed: a dot-atom local part and a domain of at least two labels.",
        ))
        .build()
}

/// Replaces each copy of a component schema inside the document by a
/// reference to the component. utoipa writes out the argument of a generic
/// type (`Envelope<User>`'s `data`) in full; with this, each shape is
/// described once, where the other steps of [`super::document`] find it.
pub fn reference_copies(doc: &mut Value) {
    let components: Vec<(String, Value)> = doc["components"]["schemas"]
        .as_object()
        .map(|schemas| schemas.clone().into_iter().collect())
        .unwrap_or_default();
    let reference = |value: &Value| {
        components
            .iter()
            .find(|(_, schema)| schema == value)
            .map(|(name, _)| serde_json::json!({ "$ref": format!("#/components/schemas/{name}") }))
    };
    fn walk_children(value: &mut Value, reference: &dyn Fn(&Value) -> Option<Value>) {
        let children: Box<dyn Iterator<Item = &mut Value>> = match value {
            Value::Object(object) => Box::new(object.values_mut()),
            Value::Array(items) => Box::new(items.iter_mut()),
            _ => return,
        };
        for child in children {
            match reference(child) {
                Some(r) => *child = r,
                None => walk_children(child, reference),
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths") {
        walk_children(paths, &reference);
    }
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        for schema in schemas.values_mut() {
            walk_children(schema, &reference);
        }
    }
}

/// The schema of an application-defined user field's value.
fn user_field(field: &UserField) -> Value {
    let (kind, mut schema) = match field.kind() {
        FieldKind::String { max_length } => ("string", json!({ "maxLength": max_length })),
        FieldKind::Integer => ("integer", json!({})),
        FieldKind::Boolean => ("boolean", json!({})),
    };
    schema["type"] = if field.is_required() {
        json!(kind)
    } else {
        json!([kind, "null"])
    };
    schema["description"] = json!("A field of the application's own (SPEC §8)");
    schema
}

/// Adds the application's own user fields to the user (as answers show
/// it), to the registration body (required where declared so) and to the
/// `PATCH /me` body.
pub fn add_user_fields(doc: &mut Value, fields: &UserFields) {
    let schemas = &mut doc["components"]["schemas"];
    for field in fields.iter() {
        let schema = user_field(field);
        for name in ["User", "RegisterRequest", "ProfileChanges"] {
            schemas[name]["properties"][field.name()] = schema.clone();
        }
        if field.is_required() {
            let required = &mut schemas["RegisterRequest"]["required"];
            if let Some(list) = required.as_array_mut() {
                list.push(json!(field.name()));
            }
        }
    }
}
