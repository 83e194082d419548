//! Application-defined user fields (SPEC §8, FastEdgy's `phone` example):
//! declared once, accepted at registration and `PATCH /me`, stored,
//! validated and returned with the user.

use serde_json::Value;

use crate::error::FieldError;

/// The values of application-defined user fields, stored as a JSON object.
pub type ExtraFields = serde_json::Map<String, serde_json::Value>;

/// The kind of value a field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// A string of at most `max_length` characters.
    String {
        /// Longest accepted value, in characters.
        max_length: usize,
    },
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
}

/// One application-defined user field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserField {
    name: String,
    kind: FieldKind,
    required: bool,
}

const RESERVED: &[&str] = &[
    "id",
    "email",
    "name",
    "password",
    "password_hash",
    "is_active",
    "is_verified",
    "is_superuser",
    "created_at",
];

impl UserField {
    /// An optional string field of at most `max_length` characters.
    pub fn string(name: impl Into<String>, max_length: usize) -> Self {
        Self {
            name: name.into(),
            kind: FieldKind::String { max_length },
            required: false,
        }
    }

    /// An optional integer field.
    pub fn integer(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: FieldKind::Integer,
            required: false,
        }
    }

    /// An optional boolean field.
    pub fn boolean(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: FieldKind::Boolean,
            required: false,
        }
    }

    /// Makes the field required at registration.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The field's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of value it holds.
    pub fn kind(&self) -> &FieldKind {
        &self.kind
    }

    /// Whether registration requires it.
    pub fn is_required(&self) -> bool {
        self.required
    }

    fn check(&self, value: &Value) -> Result<Value, String> {
        match (&self.kind, value) {
            (_, Value::Null) if !self.required => Ok(Value::Null),
            (FieldKind::String { max_length }, Value::String(s)) => {
                let s = s.trim();
                if s.chars().count() > *max_length {
                    Err(format!("Must be at most {max_length} characters"))
                } else {
                    Ok(Value::String(s.to_string()))
                }
            }
            (FieldKind::String { .. }, _) => Err("Must be a string".into()),
            (FieldKind::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
            (FieldKind::Integer, _) => Err("Must be a whole number".into()),
            (FieldKind::Boolean, Value::Bool(_)) => Ok(value.clone()),
            (FieldKind::Boolean, _) => Err("Must be true or false".into()),
        }
    }
}

/// The set of fields an application declared.
#[derive(Debug, Clone, Default)]
pub struct UserFields(Vec<UserField>);

impl UserFields {
    /// Adds a field; panics at start-up if the name is reserved or repeated,
    /// since that is a programming error in the application.
    pub fn push(&mut self, field: UserField) {
        assert!(
            !RESERVED.contains(&field.name.as_str()),
            "user field `{}` is reserved by Portcullis",
            field.name
        );
        assert!(
            !self.0.iter().any(|f| f.name == field.name),
            "user field `{}` is declared twice",
            field.name
        );
        self.0.push(field);
    }

    /// The declared fields.
    pub fn iter(&self) -> impl Iterator<Item = &UserField> {
        self.0.iter()
    }

    /// Picks the declared fields out of a request body and checks them.
    /// With `partial` (PATCH), absent fields are left out; otherwise a
    /// required field must be present. Undeclared keys are ignored.
    pub fn extract(
        &self,
        body: &serde_json::Map<String, Value>,
        partial: bool,
    ) -> Result<ExtraFields, Vec<FieldError>> {
        let mut out = ExtraFields::new();
        let mut errors = Vec::new();
        for field in &self.0 {
            match body.get(&field.name) {
                None if field.required && !partial => {
                    errors.push(FieldError::new(&field.name, "Field required"))
                }
                None => {}
                Some(value) => match field.check(value) {
                    Ok(v) => {
                        out.insert(field.name.clone(), v);
                    }
                    Err(message) => errors.push(FieldError::new(&field.name, message)),
                },
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declared_fields_are_checked() {
        let mut fields = UserFields::default();
        fields.push(UserField::string("phone", 20));
        fields.push(UserField::integer("age").required());
        let body = json!({"phone": " +41 79 ", "age": 30, "other": 1});
        let out = fields.extract(body.as_object().unwrap(), false).unwrap();
        assert_eq!(out.get("phone"), Some(&json!("+41 79")));
        assert!(!out.contains_key("other"));
        let bad = json!({"phone": "x".repeat(21)});
        let errs = fields.extract(bad.as_object().unwrap(), false).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(fields.extract(bad.as_object().unwrap(), true).is_err());
        let partial = json!({});
        assert!(
            fields
                .extract(partial.as_object().unwrap(), true)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    #[should_panic(expected = "reserved")]
    fn reserved_names_panic() {
        UserFields::default().push(UserField::string("email", 10));
    }
}
