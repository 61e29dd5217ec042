// Package examples holds example snapshots in the documented format
// (docs/snapshot.md): the model's tests replay them and `flinkscale demo`
// shows the decisions they lead to.
package examples

import "embed"

// FS holds the example snapshots, one job each, as *.json.
//
//go:embed *.json
var FS embed.FS
