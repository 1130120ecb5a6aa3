# fediops: two commands do all set-up on a fresh Debian machine with Go.
#   make demo   runs the main job on a local stack of real servers
#   make test   passes the tests
#   make pictures  draws docs/img/*.png (the dashboards from a 2-minute run, the budget)
# Both install the Debian packages they need when run as root.

GO ?= go

.PHONY: demo test vet deps bench pictures

deps:
	@./scripts/deps.sh

demo: deps
	$(GO) run ./examples/demo

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./...

pictures: deps
	$(GO) run ./deploy/render -duration 2m -out docs/img
	$(GO) run ./examples/plan budget -vcpu 1,2,4 -db-size 2,4,8 -out docs/img/budget.png
