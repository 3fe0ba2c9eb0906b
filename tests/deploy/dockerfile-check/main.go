// dockerfile-check: BuildKit's own Dockerfile frontend, run without a Docker engine.
// For every stage of the given Dockerfile it runs the lint rules of
// `docker build --check` and converts the stage to LLB (the build graph), which
// catches syntax errors, unknown flags, undefined stages or args in COPY --from/FROM,
// and the like. Base images are not pulled: their configs are stand-ins.
//
//	go run . path/to/Dockerfile [BUILD_ARG=value ...]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
)

type offlineResolver struct{}

// ResolveImageConfig answers for any image with a minimal Linux image config.
func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{}},
	})
	return ref, digest.FromBytes(cfg), cfg, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-check Dockerfile [ARG=value ...]")
		os.Exit(2)
	}
	dt, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	args := map[string]string{}
	for _, kv := range os.Args[2:] {
		k, v, _ := strings.Cut(kv, "=")
		args[k] = v
	}
	ctx := context.Background()
	targets, err := dockerfile2llb.ListTargets(ctx, dt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	src := llb.Local("dockerfile")
	sourceMap := llb.NewSourceMap(&src, os.Args[1], "Dockerfile", dt)
	if sourceMap.Definition, err = src.Marshal(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	failed := false
	for _, t := range targets.Targets {
		opt := dockerfile2llb.ConvertOpt{
			Config:       dockerui.Config{Target: t.Name, BuildArgs: args},
			MetaResolver: offlineResolver{},
			SourceMap:    sourceMap,
		}
		before := failed
		failed = false
		res, err := dockerfile2llb.DockerfileLint(ctx, dt, opt)
		if err != nil {
			fmt.Printf("%s: lint: %v\n", t.Name, err)
			failed = true
			continue
		}
		if res.Error != nil {
			fmt.Printf("%s: error: %s\n", t.Name, res.Error.Message)
			failed = true
		}
		for _, w := range res.Warnings {
			line := 0
			if len(w.Location.Ranges) > 0 {
				line = int(w.Location.Ranges[0].Start.Line)
			}
			fmt.Printf("%s: warning %s (line %d): %s\n", t.Name, w.RuleName, line, w.Detail)
			failed = true
		}
		if _, _, _, _, err := dockerfile2llb.Dockerfile2LLB(ctx, dt, opt); err != nil {
			fmt.Printf("%s: does not convert to a build graph: %v\n", t.Name, err)
			failed = true
		}
		if !failed {
			fmt.Printf("%s: ok\n", t.Name)
		}
		failed = failed || before
	}
	if failed {
		os.Exit(1)
	}
}
