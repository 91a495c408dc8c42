// The NBD capture server lives here; see docs/capture.md.
