"""DIS kinematics of SPEC 2b, shared by the Duke & Owens theory and the DIS detectors (one place)."""

SQRT_S = 140.0  # GeV
PROTON_MASS = 0.93891897  # GeV
Q2_MIN = 1.28**2  # GeV^2
