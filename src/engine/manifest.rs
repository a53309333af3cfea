//! Multi-document YAML/JSON parsing that keeps, for every JSON pointer, the line it came from.
