# Baseline: mmdet's own Faster R-CNN R-50 FPN 1x (torchvision ImageNet weights; box AP 37.4).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
