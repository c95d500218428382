//! The words of schema (non-CEL) violations, in the phrasing kube-apiserver uses, shared by
//! the structural schema checker and the Rust validation so both report the same text.

use std::fmt::Display;

/// A number below the schema's `minimum` (kube-apiserver names the field again, "in body").
pub fn below_minimum(field: &str, min: impl Display) -> String {
    format!("{field} in body should be greater than or equal to {min}")
}

/// A number above the schema's `maximum`.
pub fn above_maximum(field: &str, max: impl Display) -> String {
    format!("{field} in body should be less than or equal to {max}")
}

/// A string shorter than `minLength`.
pub fn too_short(field: &str, min: impl Display) -> String {
    format!("{field} in body should be at least {min} chars long")
}

/// A string longer than `maxLength`.
pub fn too_long(max: impl Display) -> String {
    format!("Too long: may not be more than {max} bytes")
}

/// A string not matching `pattern`.
pub fn no_match(field: &str, pattern: &str) -> String {
    format!("{field} in body should match '{pattern}'")
}

/// A string that is not an RFC 3339 time where `format: date-time` asks for one.
pub fn not_a_time(field: &str, value: &str) -> String {
    format!("{field} in body must be of type date-time: \"{value}\"")
}

/// A list or map with more than `maxItems` / `maxProperties` entries.
pub fn too_many(count: usize, max: impl Display) -> String {
    format!("Too many: {count}: must have at most {max} items")
}

/// A repeated key in an `x-kubernetes-list-type: map` or `set` list.
pub fn duplicate(value: impl Display) -> String {
    format!("Duplicate value: {value}")
}

/// A value outside the schema's `enum`.
pub fn unsupported(value: impl Display, allowed: &[String]) -> String {
    format!(
        "Unsupported value: {value}: supported values: {}",
        allowed.join(", ")
    )
}

/// A missing required field.
pub fn required() -> String {
    "Required value".to_string()
}

/// Where kube-apiserver reports that it skipped the CEL rules (the field is `<nil>`).
pub const CEL_NOT_CHECKED_FIELD: &str = "<nil>";
/// What kube-apiserver says when a schema violation kept it from running the CEL rules.
pub const CEL_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// Whether a schema violation keeps kube-apiserver from running the CEL rules at all: a
/// missing required field, a wrong type, a value outside its enum, a string over `maxLength`
/// or a list / map over `maxItems` / `maxProperties` (its `hasBlockingErr`). A pattern or a
/// range violation does not: the rules still run and report beside it.
pub fn blocks_cel(message: &str) -> bool {
    message.starts_with("Too long:")
        || message.starts_with("Too many:")
        || message.starts_with("Unsupported value:")
        || message == required()
        || message.contains(" in body must be of type ")
}

/// How kube-apiserver names the field of a rule on the object itself (an empty path).
pub const ROOT_FIELD: &str = "<nil>";
