import ReelFiles
