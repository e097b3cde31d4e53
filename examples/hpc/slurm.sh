#!/bin/bash
# quantom_gf on a Slurm cluster (srun), e.g.
#
#   sbatch -A <account> examples/hpc/slurm.sh                     # from the repository root
#   sbatch -A <account> --export=ALL,STRATEGY=ga-steady,EVALUATOR=mpi-async examples/hpc/slurm.sh
#   sbatch -A <account> --export=ALL,STRATEGY=ppo,WORKERS=async examples/hpc/slurm.sh
#
# Resubmitting the same script continues the same run directory (--resume) until it is done.
#SBATCH --job-name=quantom_gf
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --signal=TERM@120
#SBATCH --output=quantom_gf-%j.out
#SBATCH --requeue

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"

# The cluster's MPI and an mpi4py built against it (see README.md), e.g.
#   module load gcc openmpi python     # or: PrgEnv-gnu cray-mpich cray-python
module load python 2>/dev/null || true
if [ -d venv ]; then source venv/bin/activate; fi

STRATEGY=${STRATEGY:-ga}
ENV=${ENV:-proxy1d-detector}
EVALUATOR=${EVALUATOR:-mpi}
WORKERS=${WORKERS:-single}
SEED=${SEED:-0}
RUN_DIR=${RUN_DIR:-runs/slurm-${ENV}-${STRATEGY}-s${SEED}}
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1} NUMBA_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

if [ -f "${RUN_DIR}/result.json" ]; then
    echo "${RUN_DIR} has finished: ${RUN_DIR}/result.json"; exit 0
fi
if [ -f "${RUN_DIR}/checkpoint.pkl" ] && [ ! -f "${RUN_DIR}/result.json" ]; then
    ARGS=(--resume "${RUN_DIR}")
else
    ARGS=(--strategy "${STRATEGY}" --env "${ENV}" --seed "${SEED}" --out "${RUN_DIR}")
fi
echo "$(date) ${SLURM_NTASKS:-?} ranks on ${SLURM_JOB_NUM_NODES:-?} nodes: ${ARGS[*]}"

# --signal=TERM@120 makes Slurm send SIGTERM to the step 2 minutes before the time limit;
# rank 0 checkpoints after the current generation and releases the other ranks.
# PMI: --mpi=pmix for Open MPI 4/5, --mpi=pmi2 (or the site default) for MPICH / Cray MPICH.
srun --mpi="${SRUN_MPI:-pmix}" --cpu-bind=cores \
    python -m quantom_gf.run "${ARGS[@]}" --evaluator "${EVALUATOR}" --workers "${WORKERS}" --quiet
