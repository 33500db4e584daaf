"""The smoothing stage without ROS: the frame-rate estimate and N = FPS x window, and the two
voters behind one interface (labels for classification, tracks for detection).
"""
