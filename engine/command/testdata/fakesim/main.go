// Command fakesim is the command engine's test fixture: a stand-in for an
// external simulator that misbehaves on request. The first argument is the
// mode:
//
//	json K V ...   print log lines, then {"K": V, ...} (V as JSON if it parses)
//	argv           print {"argv": [every argument after the mode]}
//	entries        print {"entries": N}, N files in the working directory,
//	               then leave a file and a folder behind
//	regex          print "cycles: 1234" and "util = 0.5" lines among noise
//	crash          write to stderr, then die by a signal (SIGABRT, as an
//	               assert in a C++ simulator)
//	hang           start a child (mode sleep), record both pids in pids.txt
//	               in the working directory, and never exit
//	orphan         start a child (mode sleep), record both pids in pids.txt,
//	               print {"x": 1} and exit 0, leaving the child running
//	sleep          sleep forever
//	garbage        print text that holds no JSON object, exit 0
//	fail N         write 30 numbered lines to stderr, exit with status N
//	neupims FLAGS  act as NeuPIMs: take its real flags, check their files,
//	               copy the TSV set of $FAKESIM_OUTPUT into --log_dir, exit
//	               with $FAKESIM_EXIT; $FAKESIM_DROP lists files not to copy
//	               (e.g. "_summary.tsv SA_stage_E.tsv")
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "fakesim: no mode")
		os.Exit(2)
	}
	mode, args := os.Args[1], os.Args[2:]
	switch mode {
	case "json":
		fmt.Println("fakesim starting {not json")
		obj := map[string]any{}
		for i := 0; i+1 < len(args); i += 2 {
			var v any
			if err := json.Unmarshal([]byte(args[i+1]), &v); err != nil {
				v = args[i+1]
			}
			obj[args[i]] = v
		}
		fmt.Println(`{"progress": 0.5}`)
		b, _ := json.MarshalIndent(obj, "", "  ")
		fmt.Println(string(b))
		fmt.Println("done.")
	case "argv":
		b, _ := json.Marshal(map[string]any{"argv": args, "n": len(args)})
		fmt.Println(string(b))
	case "entries":
		ents, err := os.ReadDir(".")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.WriteFile("litter.txt", []byte("x"), 0o644)
		os.MkdirAll("litter/deep", 0o755)
		fmt.Fprintln(os.Stderr, "entries ran")
		fmt.Printf("{\"entries\": %d}\n", len(ents))
	case "regex":
		fmt.Println("noise: cycles unknown yet")
		fmt.Println("cycles: 1000")
		fmt.Println("util = 0.25 (warm-up)")
		fmt.Println("cycles: 1234")
		fmt.Println("util = 0.5")
	case "crash":
		fmt.Fprintln(os.Stderr, "about to crash")
		debug.SetTraceback("crash") // the Go runtime then aborts: SIGABRT
		syscall.Kill(os.Getpid(), syscall.SIGSEGV)
		time.Sleep(time.Minute)
	case "hang", "orphan":
		child := exec.Command(os.Args[0], "sleep")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		pids := fmt.Sprintf("%d %d\n", os.Getpid(), child.Process.Pid)
		if err := os.WriteFile("pids.txt", []byte(pids), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if mode == "orphan" {
			fmt.Println(`{"x": 1}`)
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hanging with a child")
		sleepForever()
	case "sleep":
		sleepForever()
	case "garbage":
		fmt.Println("Simulation Finished: cycles = lots }{ ]")
	case "fail":
		code := 1
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		for i := 1; i <= 30; i++ {
			fmt.Fprintf(os.Stderr, "stderr line %d\n", i)
		}
		os.Exit(code)
	case "neupims":
		neupims(args)
	default:
		fmt.Fprintf(os.Stderr, "fakesim: unknown mode %q\n", mode)
		os.Exit(2)
	}
}

func neupims(args []string) {
	fs := flag.NewFlagSet("neupims", flag.ExitOnError)
	files := map[string]*string{}
	for _, name := range []string{"config", "mem_config", "cli_config", "model_config", "sys_config"} {
		files[name] = fs.String(name, "", "")
	}
	logDir := fs.String("log_dir", "", "")
	fs.String("log_level", "info", "")
	fs.Parse(args)
	for name, p := range files {
		data, err := os.ReadFile(*p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--%s: %v\n", name, err)
			os.Exit(1)
		}
		if strings.HasSuffix(*p, ".json") && !json.Valid(data) {
			fmt.Fprintf(os.Stderr, "--%s: invalid JSON\n", name)
			os.Exit(1)
		}
	}
	if st, err := os.Stat(*logDir); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "--log_dir %s must exist\n", *logDir)
		os.Exit(1)
	}
	src := os.Getenv("FAKESIM_OUTPUT")
	drop := strings.Fields(os.Getenv("FAKESIM_DROP"))
	ents, err := os.ReadDir(src)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, e := range ents {
		skip := false
		for _, d := range drop {
			skip = skip || d == e.Name()
		}
		if skip {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(*logDir, e.Name()), data, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Println("Simulation Finished")
	code, _ := strconv.Atoi(os.Getenv("FAKESIM_EXIT"))
	os.Exit(code)
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
