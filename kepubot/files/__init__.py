"""Files: reading posts and figures from the files editors and outlets give (Markdown with
TOML front matter, CSV, XLSX exports) and the media store on disk (docs/architecture.md §17)."""
