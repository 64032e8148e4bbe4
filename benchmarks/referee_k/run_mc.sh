#!/bin/bash
cd /tmp/referee_k
R="nice -n 10 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /tmp/freshvenv/bin/python mc.py"
$R imputation null 400 100000
$R imputation 1 400 200000
$R imputation 0.5 250 300000
$R imputation 0 250 400000
$R imputation -0.5 250 500000
$R callaway_santanna null 150 600000
$R callaway_santanna 1 150 700000
$R callaway_santanna 0.5 100 800000
$R callaway_santanna 0 100 900000
$R callaway_santanna -0.5 100 1000000
