//! swing-providers: concrete providers (placeholder until issue D lands).
