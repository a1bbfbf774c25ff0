// Package console is hamq's web console: a page of plain HTML, CSS and
// JavaScript, embedded in the binary and served by the admin API at
// /admin/, that reads and drives the admin API's JSON (no CDN, no build
// step). It polls while open, so the page updates itself without reloads.
// It holds no state and imports nothing of the broker.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the console's files; mount it under /admin with the
// prefix stripped.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page is small and changes with the binary: always asked
		// again, so an upgrade shows at once.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
}
