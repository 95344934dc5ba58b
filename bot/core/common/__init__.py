"""What every capability shares and none owns: time and duration input as people type it."""
