// ReelMedia: cold-storage folders, virtual tape and LTO tape (issue #6), being built.
