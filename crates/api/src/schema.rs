//! Small schemars transforms for the generated CRD schema.

/// Removes a type's own description, so that the description of the field using the type
/// is the one `kubectl explain` shows (kube's `Option<enum>` rewrite would otherwise replace
/// the field's words with the type's).
pub fn drop_description(schema: &mut schemars::Schema) {
    schema.remove("description");
}
