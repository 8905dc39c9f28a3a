"""Customer files: encrypted personal fields, file numbers, scoped lists, search, export."""
