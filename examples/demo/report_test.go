package main

import (
	"os"
	"time"
)

// A Report prints as the table the demo ends with. runJob fills it in;
// this one is made by hand to show the shape.
func ExampleReport_WriteTable() {
	rep := &Report{Took: 2500 * time.Millisecond, Steps: []Step{
		{Name: StepHealth, Result: OK, Duration: 8 * time.Millisecond, Numbers: "6 checks green"},
		{Name: StepMirror2, Result: OK, Duration: 6 * time.Millisecond, Numbers: "300 listed, 0 copied"},
	}}
	rep.WriteTable(os.Stdout)
	// Output:
	// STEP          RESULT            DURATION  NUMBERS
	// health        ok                8ms       6 checks green
	// mirror again  ok                6ms       300 listed, 0 copied
	// total         all steps passed  2.5s
}
