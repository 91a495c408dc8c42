import CFuse3
import ReelFiles
