module github.com/sweep-dse/sweep

go 1.26.0
