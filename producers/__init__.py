"""producers: see ARCHITECTURE.md; filled by later issues."""
