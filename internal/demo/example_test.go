package demo_test

import (
	"os"
	"time"

	"github.com/fediops/fediops/internal/demo"
)

// A Report prints as the table the demo ends with. Run fills it in; this
// one is made by hand to show the shape.
func ExampleReport_WriteTable() {
	rep := &demo.Report{Took: 2500 * time.Millisecond, Steps: []demo.Step{
		{Name: demo.StepHealth, Result: demo.OK, Duration: 8 * time.Millisecond, Numbers: "6 checks green"},
		{Name: demo.StepMirror2, Result: demo.OK, Duration: 6 * time.Millisecond, Numbers: "300 listed, 0 copied"},
	}}
	rep.WriteTable(os.Stdout)
	// Output:
	// STEP          RESULT            DURATION  NUMBERS
	// health        ok                8ms       6 checks green
	// mirror again  ok                6ms       300 listed, 0 copied
	// total         all steps passed  2.5s
}
