package main

import (
	"context"
	"io"

	"beadbff/config"
)

// doctor runs Bead's 403 debug checklist from the command line. The checklist itself is issue 3's work;
// until then it says so and exits 2 ("could not run"), never pretending to a diagnosis.
func doctor(_ context.Context, _ *config.Config, _ []string, _, _ io.Writer) error {
	return exitError{code: 2, msg: "beadbff doctor: not available in this version yet (see issue 3)"}
}
