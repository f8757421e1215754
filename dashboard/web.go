package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// web holds the pages, their scripts and their style sheet: the project's
// own, served from the binary.
//
//go:embed web
var web embed.FS

// page answers the embedded HTML page of that name.
func page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { pageWithStatus(w, name, http.StatusOK) }
}

// pageWithStatus answers the embedded HTML page of that name with the
// status code.
func pageWithStatus(w http.ResponseWriter, name string, code int) {
	b, err := web.ReadFile("web/" + name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	w.Write(b)
}

// staticFiles serves the scripts and the style sheet under /static/,
// without folder listings.
func staticFiles() http.Handler {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded folder is there at build time
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
