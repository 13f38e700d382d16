module github.com/genrelay/genrelay/deployments/natsprobe

go 1.26.8
