// Package chart draws fediops's pictures with gonum/plot in one style:
// write an admin's connection budget as a PNG with Budget.WritePNG, or
// build a plot in the dashboards' style with UnitTicks and DrawLegend.
//
// The style is the one of the dashboards' pictures (deploy/render): the
// palette of Color, filled areas in a Lighter shade of their line, values
// written in their Grafana unit by Format ("250 ms", "1.5 KiB", "12.5%"),
// the Y axis ticked in that unit (UnitTicks: whole numbers for counts,
// binary steps for bytes) and named by UnitName, and the legend under the
// plot, wrapped onto as many rows as it needs (DrawLegend).
//
// Budget stacks the database connections each part of an instance may
// open (web, Sidekiq, streaming, direct use), one column per sizing, against
// the connection limits of the cluster sizes given, each drawn as a line
// and named; every segment carries the variable that sets it
// (WEB_CONCURRENCY×DB_POOL, DB_POOL). `plan budget` draws it from droplet
// and database sizes.
package chart
