// Databases inside a volume's file system at any point: see README.md in this folder and
// docs/databases.md.
