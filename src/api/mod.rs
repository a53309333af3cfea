//! The `shipstream.io/v1alpha1` API types and CRD rendering. Data only.
