//! The hardening rule catalog: rule metadata and conditions loaded from `lint-rules/`,
//! evaluation against manifests, exemptions and safe fixes.
