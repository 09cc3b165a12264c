import torch
from torch.utils.data import DataLoader, TensorDataset

# 创建模拟数据
X = torch.randn(100, 10)  # 100个样本,每个样本10个特征
y = torch.randint(0, 2, (100,))  # 二分类标签

# 将数据划分为训练集和测试集
train_dataset = TensorDataset(X[:80], y[:80])  # 训练集
test_dataset = TensorDataset(X[80:], y[80:])  # 测试集

# 创建DataLoader
train_loader = DataLoader(train_dataset, batch_size=10, shuffle=True)
test_loader = DataLoader(test_dataset, batch_size=20, shuffle=False)
import torch.nn as nn
import torch.optim as optim

# 定义模型
model = nn.Sequential(
    nn.Linear(10, 5),
    nn.ReLU(),
    nn.Linear(5, 2),
    nn.LogSoftmax(dim=1)
)

# 定义损失函数和优化器
criterion = nn.NLLLoss()  # 负对数似然损失
optimizer = optim.Adam(model.parameters(), lr=0.01)

# 训练模型
num_epochs = 5
for epoch in range(num_epochs):
    model.train()  # 设置模型为训练模式
    for inputs, targets in train_loader:
        optimizer.zero_grad()  # 清空梯度
        outputs = model(inputs)  # 前向传播
        loss = criterion(outputs, targets)  # 计算损失
        loss.backward()  # 反向传播
        optimizer.step()  # 更新参数

    print(f"Epoch [{epoch+1}/{num_epochs}], Loss: {loss.item():.4f}")
from sklearn.metrics import accuracy_score

# 测试模型
model.eval()  # 设置模型为评估模式
all_preds = []
all_labels = []

with torch.no_grad():  # 关闭梯度计算
    for inputs, targets in test_loader:
        outputs = model(inputs)
        _, predicted = torch.max(outputs, 1)  # 获取预测结果
        all_preds.extend(predicted.numpy())
        all_labels.extend(targets.numpy())

# 计算准确率
accuracy = accuracy_score(all_labels, all_preds)
print(f"Test Accuracy: {accuracy:.4f}")
