//go:build controller

package main

// The controller image's build (-tags controller, make image): only the
// commands a pod needs; devcommands.go is left out.
func init() { buildFlavour = "controller" }
