//! The words of schema (non-CEL) violations, in the phrasing kube-apiserver uses, shared by
//! the structural schema checker and the Rust validation so both report the same text.

use std::fmt::Display;

/// A number below the schema's `minimum`.
pub fn below_minimum(min: impl Display) -> String {
    format!("should be greater than or equal to {min}")
}

/// A number above the schema's `maximum`.
pub fn above_maximum(max: impl Display) -> String {
    format!("should be less than or equal to {max}")
}

/// A string shorter than `minLength`.
pub fn too_short(min: impl Display) -> String {
    format!("should be at least {min} chars long")
}

/// A string longer than `maxLength`.
pub fn too_long(max: impl Display) -> String {
    format!("Too long: may not be more than {max} bytes")
}

/// A string not matching `pattern`.
pub fn no_match(pattern: &str) -> String {
    format!("should match '{pattern}'")
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
